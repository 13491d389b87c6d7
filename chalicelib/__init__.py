"""Client Management service of NexusRMS: Chalice routes and event handlers over one DynamoDB table."""
