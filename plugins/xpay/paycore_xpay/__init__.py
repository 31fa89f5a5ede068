"""XPAY (xpay.com.ua) for paycore: the gateway plugin and its local sandbox."""
