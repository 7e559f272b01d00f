-- --log-format json: every record of the node, logger's included, is one JSON object per
-- line, with the call's file, line and function, for log collectors.
logger.warn("quote \" backslash \\ tab\tnewline\nend")
logger.out("%{=bot:error}named", "second")
logger.info("bad utf8 \255 here")
print("ok")
