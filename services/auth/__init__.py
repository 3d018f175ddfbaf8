"""Who may call the HTTP services: API tokens of hubs and planners."""
