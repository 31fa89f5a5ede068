"""MilkyPay/Paytone (Corefy platform) for paycore: the gateway plugin (`gateway`) and its
local sandbox (`sandbox`)."""
