"""Live occupancy (GET /occupancy, GET /occupancy/live): visitors present now per zone, as a snapshot
and as a server-sent event stream updated as sightings arrive."""
