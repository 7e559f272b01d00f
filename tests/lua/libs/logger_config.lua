-- log_format = "json" in a --config file is --log-format json
logger.info("through the config")
print("ok")
