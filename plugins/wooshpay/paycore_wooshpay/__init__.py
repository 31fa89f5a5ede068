"""WooshPay for paycore: the gateway plugin (`gateway`) and its local sandbox (`sandbox`)."""
