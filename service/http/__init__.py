"""What every route shares: dependencies (state, caller, roles), error responses and middleware."""
