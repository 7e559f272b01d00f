-- The home of the built-in stage 'index' (docs/stages.md): started from this file on the node
-- that is its home, at the first message for it. stage.builtin is defined in ../stages.lua.
stage.builtin.index()
