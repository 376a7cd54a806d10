"""What every part of the service shares: domain errors, id bounds and time parsing."""
