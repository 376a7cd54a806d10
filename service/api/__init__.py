"""The HTTP API: application factory, dependencies, error handlers and routers."""
