-- logger.out/info/warn/error/trace (STAGE docs/api/logger.md): each is one record of the
-- node's log on stderr, at its level; trace is written at debug (hidden at the default info).
logger.out("out record")
logger.info("info record", 42, true, nil)
logger.warn("warn record")
logger.error("error record")
logger.trace("trace record")
-- the documented example: logger.out("%{PWD} %l - " .. msg, "%{=bot:warn}")
local msg = "the example"
logger.out("%{SN_LOGGER_TEST} %l - " .. msg, "%{=bot:warn}")
local function where_am_i()
    logger.info("F=%F L=%L M=%M")
end
where_am_i()
-- %N{ENV}: the variable cut to N, or right-aligned in N; a missing one is empty
logger.info("[%3{SN_LOGGER_TEST}] [%12{SN_LOGGER_TEST}] [%{SN_NO_SUCH_VAR}]")
-- what is not a substitution stays as written
logger.info("100%% sure, 50% off, %q, %{unclosed, end%")
-- the level of a record can be changed inside it; the name alone keeps the level
logger.info("%{=:error}raised to error")
logger.error("%{=audit}named only")
print("done")
