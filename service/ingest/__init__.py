"""Ingest (POST /sightings): check, embed, link to visitors, commit, index; and the kept crops."""
