"""Person search (POST /match): where was this person seen? Opt-in per store, every search audited."""
