"""The domain layer: what the dashboard does with hosts, with no HTML and no LXD wire format
(gateway: hosts/lxd/; pages: hosts/views/)."""
