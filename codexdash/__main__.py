from codexdash.cli import main

raise SystemExit(main())
