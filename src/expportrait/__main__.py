from expportrait.cli import main

raise SystemExit(main())
