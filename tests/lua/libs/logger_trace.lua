-- logger.trace is written at the node's debug level: seen with --log-level debug.
logger.trace("trace record %L")
logger.info("%{=:trace}info lowered to trace")
print("ok")
