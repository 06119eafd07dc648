"""The mirroring sidecar: relays switch sessions to the primary path and
copies every switch->controller OpenFlow message to the master controller."""
