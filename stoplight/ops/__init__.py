"""Running and operating the app: sync, redelivery, the embedded Redis, the terminal view,
metrics and logs."""
