-- a preload file names the policy _SANDBOX too (STAGE docs/tech/sandbox.md, r940)
_SANDBOX[""] = { "*PRE" }
PRE = "from preload"
