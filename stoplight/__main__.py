from stoplight.cli import main

main()
