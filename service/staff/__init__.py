"""Staff (GET/POST /staff, POST /visitors/{id}/staff): enrolled from photos or by marking a visitor, left
out of density, flows, occupancy and returning shoppers unless asked for; every change audited."""
