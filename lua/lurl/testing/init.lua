-- lurl.testing: tools for specs of lurl scripts and policies.
return {
  server = require("lurl.testing.server").new,
}
