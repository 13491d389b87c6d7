"""The local runtime: DynamoDB Local, stream pump, scheduler and inbox watcher around the Chalice app."""
