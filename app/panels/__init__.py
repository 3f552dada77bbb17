"""The dashboard's panels; each is a QWidget built from a ``GatewayBridge``."""
