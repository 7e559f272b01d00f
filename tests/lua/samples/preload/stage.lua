-- STAGE's bin/preload/stage.lua (datumflux/platform), ported: its `broker = require('broker')`
-- and `odbc = require('odbc')` lines are left out, those libraries come in later parts
-- (4 and 6); the rest is unchanged.
logger = require('logger')

bundle = require('bundle')
for k, v in pairs(bundle) do
	stage[k] = v
end
