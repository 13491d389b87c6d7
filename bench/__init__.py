"""Benchmarks (`make bench`): the app over real HTTP on DynamoDB Local, with calls, throughput and peak memory."""
