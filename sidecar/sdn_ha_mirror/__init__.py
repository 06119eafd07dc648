"""The mirroring sidecar: feeds the master controller a copy of every
switch->controller OpenFlow message over shadow sessions of its own, from the
kernel's copies of the switch sessions (capture) or, with TLS, as the relay
that ends them; also the NAT mode prober, the identity gate and the switch
emulator. docs/mirror.md describes it."""
