"""The key names of each domain, one mixin of ``outreach.store.keys.Keys`` each."""
