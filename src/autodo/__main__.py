from autodo.cli import main

main()
