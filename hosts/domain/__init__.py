"""The domain: what the dashboard does with LXD hosts, with no HTML and (where avoidable) no
request objects.  Imports the gateway (hosts/lxd) and the models; never views or the live path."""
