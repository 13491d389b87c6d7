"""HTTP and event glue: thin Chalice blueprints and event handlers over the domain."""
