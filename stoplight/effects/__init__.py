"""What the app shows people: GitHub statuses and labels, later Slack notices."""
