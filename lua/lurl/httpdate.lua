-- HTTP dates: reading them with RFC 6265 section 5.1.1's algorithm, which
-- takes every form RFC 9110 section 5.6.7 allows (IMF-fixdate, the obsolete
-- RFC 850 and asctime forms) and the sloppy ones servers send in cookies;
-- writing IMF-fixdate. Used by the cookie jar (Expires) and the policies
-- (Retry-After). Times are epoch seconds, UTC: os.time would use the local
-- time zone.
local check = require "lurl.check"

local M = {}

local floor = math.floor

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
                 jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 }
local MONTH_NAMES = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }
local DAY_NAMES = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" } -- 1970-01-01 was a Thursday

-- date-token = 1*non-delimiter; delimiter = %x09 / %x20-2F / %x3B-40 / %x5B-60 / %x7B-7E
local DATE_TOKEN = "[^\9\32-\47\59-\64\91-\96\123-\126]+"

local function is_leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end

local function days_in_month(y, m)
  if m == 2 then return is_leap(y) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
-- days_from_civil): os.time would use the local time zone.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

-- The fields of one date-token, tried in the order 5.1.1 step 2 gives.
local function date_fields(tokens)
  local f = {}
  for _, tok in ipairs(tokens) do
    local h, mi, s = tok:match("^(%d%d?):(%d%d?):(%d%d?)%f[%D]")
    if not f.hour and h then
      f.hour, f.minute, f.second = tonumber(h), tonumber(mi), tonumber(s)
    elseif not f.day and tok:match("^%d%d?%f[%D]") then
      f.day = tonumber(tok:match("^%d%d?"))
    elseif not f.month and MONTHS[tok:sub(1, 3):lower()] then
      f.month = MONTHS[tok:sub(1, 3):lower()]
    elseif not f.year and tok:match("^%d%d%d?%d?%f[%D]") then
      f.year = tonumber(tok:match("^%d%d%d?%d?"))
    end
  end
  return f
end

-- parse(s) -> epoch seconds, or nil when s is no date.
function M.parse(s)
  if type(s) ~= "string" then check.argerror("parse", "#1", "string expected, got " .. type(s)) end
  local tokens = {}
  for tok in s:gmatch(DATE_TOKEN) do tokens[#tokens + 1] = tok end
  local f = date_fields(tokens)
  if not (f.hour and f.day and f.month and f.year) then return nil end
  local y = f.year
  if y >= 70 and y <= 99 then y = y + 1900 elseif y <= 69 then y = y + 2000 end
  if f.day < 1 or y < 1601 or f.hour > 23 or f.minute > 59 or f.second > 59 then return nil end
  if f.day > days_in_month(y, f.month) then return nil end -- "no such date" (5.1.1 step 6)
  return days_from_civil(y, f.month, f.day) * 86400 + f.hour * 3600 + f.minute * 60 + f.second
end

-- format(t) -> the IMF-fixdate (RFC 9110 5.6.7) of epoch seconds t.
function M.format(t)
  t = floor(t)
  local days = floor(t / 86400)
  local secs = t - days * 86400
  local y, m, d = civil_from_days(days)
  return ("%s, %02d %s %04d %02d:%02d:%02d GMT"):format(DAY_NAMES[days % 7 + 1], d, MONTH_NAMES[m], y,
    floor(secs / 3600), floor(secs / 60) % 60, secs % 60)
end

return M
