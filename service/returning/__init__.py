"""Returning shoppers (GET /returning): per day, the visitors seen on an earlier day within retention.
Off until the admin enables it for the store (cross-day linking of biometric data); every report and
every refusal audited."""
