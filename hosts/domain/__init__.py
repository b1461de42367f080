"""The domain layer: the dashboard's rules, with no HTML and no request objects."""
