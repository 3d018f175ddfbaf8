"""The gateway's routes, one module per resource; each builds its router from the
shared :class:`services.gateway.service.Gateway`."""
