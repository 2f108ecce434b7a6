"""Sales: qualify, accounts, opportunities, pipeline, activities, timeline, tasks, owners."""
