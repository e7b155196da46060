from warpinv.cli import main

raise SystemExit(main())
