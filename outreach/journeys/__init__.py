"""Journeys: nurture flows that follow each person step by step (model, engine, steps).

Empty until journeys land. They sit above sales and below privacy: they read segments
(people), send through campaigns and may create sales tasks.
"""
