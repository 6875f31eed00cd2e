-- haven_msgs.lua: Haven's messages (docs/PROTOCOL.md §4, §5, §6.6.2, §7) for
-- the Wireshark dissector haven.lua, which loads this file and adds its
-- fields to the "haven" protocol. It returns a table:
--
--   fields             every ProtoField defined here
--   names              message id -> name
--   dissect_handshake  decodes the one message of a handshake packet
--   dissect_messages   walks a decrypted transport payload (§4.1) and decodes
--                      every message; returns the list of message names

local M = {}

-- Loaded by haven.lua, which passes "haven"; Wireshark also loads every .lua
-- file of its plugins directory on its own, and then this file does nothing.
if ... ~= "haven" then return nil end

local NAMES = {
  [0x00] = "PADDING", [0x01] = "HANDSHAKE_INIT", [0x02] = "HANDSHAKE_RESPONSE",
  [0x03] = "COOKIE_REPLY", [0x08] = "ACK", [0x09] = "PING", [0x10] = "CLOSE",
  [0x11] = "MAX_DATA", [0x12] = "BLOCKED", [0x13] = "MAX_CHANNELS",
  [0x14] = "PATH_CHALLENGE", [0x15] = "PATH_RESPONSE", [0x20] = "OPEN",
  [0x21] = "ACCEPT", [0x22] = "REFUSE", [0x23] = "RESET", [0x30] = "STREAM",
  [0x31] = "DATAGRAM", [0x32] = "DATAGRAM_REPAIR", [0x82] = "ADDRESS",
  [0x83] = "ADDRESS_RETIRE",
}
M.names = NAMES

local SESSION_CLOSE = {
  [0] = "NO_ERROR", [1] = "PROTOCOL_ERROR", [2] = "INTERNAL_ERROR",
  [3] = "FLOW_CONTROL_ERROR", [4] = "CHANNEL_LIMIT_ERROR", [5] = "IDLE_TIMEOUT",
  [6] = "SERVER_RESTARTING", [7] = "SHUTTING_DOWN", [8] = "KEYS_EXHAUSTED",
}
local REFUSE_CODES = {
  [1] = "no listener for the service name", [2] = "too many open channels",
  [3] = "the application declined", [4] = "channel type not served under that name",
  [5] = "the listener is closing",
}
local CHANNEL_TYPES = { [1] = "reliable stream", [2] = "datagram" }

local F = {}
local function field(name, f) F[name] = f; return f end

-- Message header (§4), common to every message.
field("msg", ProtoField.none("haven.msg", "Message"))
field("type", ProtoField.uint8("haven.msg.type", "Message id", base.HEX, NAMES))
field("mflags", ProtoField.uint8("haven.msg.flags", "Message flags", base.HEX))
field("mlen", ProtoField.uint16("haven.msg.length", "Body length", base.DEC))
field("arg", ProtoField.uint32("haven.msg.arg", "Argument", base.DEC))
field("body", ProtoField.bytes("haven.msg.body", "Body"))
field("align_pad", ProtoField.bytes("haven.msg.align_padding", "Alignment padding"))
field("padding", ProtoField.bytes("haven.padding", "Padding"))
field("unknown", ProtoField.bytes("haven.msg.unknown", "Unknown message body"))
field("ignorable", ProtoField.bool("haven.msg.ignorable", "Ignorable (id bit 7)"))

-- Handshake (§7.2, §7.4): the Noise ciphertexts are shown as bytes.
field("hs_eph", ProtoField.bytes("haven.hs.ephemeral", "Ephemeral public key"))
field("hs_static", ProtoField.bytes("haven.hs.static", "Static public key, encrypted (32 + 16 tag)"))
field("hs_payload", ProtoField.bytes("haven.hs.payload", "Payload, encrypted (+ 16 tag)"))
field("hs_mac1", ProtoField.bytes("haven.hs.mac1", "mac1"))
field("hs_mac2", ProtoField.bytes("haven.hs.mac2", "mac2"))
field("hs_cookie_nonce", ProtoField.bytes("haven.hs.cookie_nonce", "Cookie nonce"))
field("hs_cookie", ProtoField.bytes("haven.hs.cookie", "Cookie, encrypted (16 + 16 tag)"))

-- Session messages (§5.1-5.6).
field("ack_delay", ProtoField.uint32("haven.ack.delay", "ACK delay (µs)", base.DEC))
field("ack_largest", ProtoField.uint64("haven.ack.largest", "Largest acknowledged", base.DEC))
field("ack_first", ProtoField.uint32("haven.ack.first_range", "First range", base.DEC))
field("ack_reserved", ProtoField.uint32("haven.ack.reserved", "Reserved", base.HEX))
field("ack_gap", ProtoField.uint32("haven.ack.gap", "Gap", base.DEC))
field("ack_rlen", ProtoField.uint32("haven.ack.range_length", "Range length", base.DEC))
field("ack_range", ProtoField.string("haven.ack.range", "Acknowledged"))
field("close_code", ProtoField.uint32("haven.close.code", "Code", base.DEC))
field("close_reason", ProtoField.string("haven.close.reason", "Reason"))
field("max_data", ProtoField.uint64("haven.max_data", "Limit", base.DEC))
field("blocked", ProtoField.uint64("haven.blocked", "Blocked at limit", base.DEC))
field("max_channels", ProtoField.uint32("haven.max_channels", "Max channels", base.DEC))
field("path_data", ProtoField.bytes("haven.path.data", "Path challenge data"))

-- Channel control (§5.7).
field("open_window", ProtoField.uint32("haven.open.window", "Window", base.DEC))
field("open_type", ProtoField.uint8("haven.open.type", "Channel type", base.DEC, CHANNEL_TYPES))
field("open_prio", ProtoField.uint8("haven.open.priority", "Priority", base.DEC))
field("open_reserved", ProtoField.uint16("haven.open.reserved", "Reserved", base.HEX))
field("open_service", ProtoField.string("haven.open.service", "Service"))
field("accept_window", ProtoField.uint32("haven.accept.window", "Window", base.DEC))
field("refuse_code", ProtoField.uint32("haven.refuse.code", "Code", base.DEC, REFUSE_CODES))
field("refuse_reason", ProtoField.string("haven.refuse.reason", "Reason"))
field("reset_code", ProtoField.uint32("haven.reset.code", "Code", base.DEC))
field("reset_final", ProtoField.uint64("haven.reset.final_size", "Final size", base.DEC))

-- Data (§5.8, §5.9, §5.11).
field("stream_fin", ProtoField.bool("haven.stream.fin", "FIN", 8, nil, 0x01))
field("stream_offset", ProtoField.uint32("haven.stream.offset", "Offset (low 32 bits)", base.DEC))
field("stream_len", ProtoField.uint16("haven.stream.length", "Data length", base.DEC))
field("stream_data", ProtoField.bytes("haven.stream.data", "Data"))
field("dg_frag", ProtoField.bool("haven.datagram.frag", "FRAG", 8, nil, 0x01))
field("dg_seq", ProtoField.uint32("haven.datagram.seq", "Sequence number (low 32 bits)", base.DEC))
field("dg_total", ProtoField.uint32("haven.datagram.total", "Datagram size", base.DEC))
field("dg_foff", ProtoField.uint32("haven.datagram.frag_offset", "Fragment offset", base.DEC))
field("dg_data", ProtoField.bytes("haven.datagram.data", "Data"))
field("rep_first", ProtoField.uint32("haven.repair.first_seq", "Group's first sequence number", base.DEC))
field("rep_k", ProtoField.uint8("haven.repair.k", "K (datagrams in the group)", base.DEC))
field("rep_r", ProtoField.uint8("haven.repair.r", "R (repair symbols of the group)", base.DEC))
field("rep_index", ProtoField.uint8("haven.repair.index", "Symbol index", base.DEC))
field("rep_reserved", ProtoField.uint8("haven.repair.reserved", "Reserved", base.HEX))
field("rep_symbol", ProtoField.bytes("haven.repair.symbol", "Repair symbol"))

-- Paths (§6.6.2).
field("addr_seq", ProtoField.uint32("haven.address.seq", "Sequence number", base.DEC))
field("addr_family", ProtoField.uint8("haven.address.family", "Family", base.DEC))
field("addr_ipv4", ProtoField.ipv4("haven.address.ipv4", "Address"))
field("addr_ipv6", ProtoField.ipv6("haven.address.ipv6", "Address"))
field("addr_port", ProtoField.uint16("haven.address.port", "Port", base.DEC))

M.fields = {}
for _, f in pairs(F) do M.fields[#M.fields + 1] = f end

-- An expert info for malformed messages; haven.lua registers it.
M.expert_malformed = ProtoExpert.new("haven.malformed", "Malformed Haven message",
  expert.group.MALFORMED, expert.severity.ERROR)
M.experts = { M.expert_malformed }

local function malformed(item, text)
  item:add_proto_expert_info(M.expert_malformed, text)
end

-- Text of an argument that is a session close code.
local function close_code_text(code, channel)
  if channel ~= 0 then return "application code " .. code end
  if code >= 0x10000 then return "application code " .. code end
  return SESSION_CLOSE[code] or ("code " .. code)
end

-- Decodes an ACK body (§5.1) into tree t; returns a short summary.
local function dissect_ack(t, body, n)
  if n < 16 or (n - 16) % 8 ~= 0 then
    malformed(t, "ACK body of " .. n .. " bytes (16 + 8k expected)")
    return "malformed"
  end
  local largest = body(0, 8):le_uint64()
  local first = body(8, 4):le_uint()
  t:add_le(F.ack_largest, body(0, 8))
  t:add_le(F.ack_first, body(8, 4))
  t:add_le(F.ack_reserved, body(12, 4))
  local ranges = {}
  if largest < UInt64.new(first) then
    malformed(t, "first range below packet number 0")
    return "malformed"
  end
  local smallest = largest - first
  ranges[1] = tostring(smallest) .. ".." .. tostring(largest)
  t:add(F.ack_range, body(0, 12), ranges[1])
  local i = 16
  while i + 8 <= n do
    local gap, rlen = body(i, 4):le_uint(), body(i + 4, 4):le_uint()
    t:add_le(F.ack_gap, body(i, 4))
    t:add_le(F.ack_rlen, body(i + 4, 4))
    -- range covers (s - gap - 2 - rlen) .. (s - gap - 2)
    if smallest < UInt64.new(gap + 2 + rlen) then
      malformed(t, "ACK range below packet number 0")
      break
    end
    local hi = smallest - (gap + 2)
    smallest = hi - rlen
    ranges[#ranges + 1] = tostring(smallest) .. ".." .. tostring(hi)
    t:add(F.ack_range, body(i, 8), ranges[#ranges])
    i = i + 8
  end
  return table.concat(ranges, ",")
end

-- Decodes one transport message; returns a summary for its tree item.
local function dissect_body(t, id, flags, arg, body, channel, argr, lenr)
  local n = body and body:len() or 0
  local function fixed(size)
    if n ~= size then malformed(t, string.format("%s body of %d bytes, %d expected", NAMES[id], n, size)) end
    return n == size
  end
  if id == 0x08 then
    t:add_le(F.ack_delay, argr)
    return dissect_ack(t, body, n)
  elseif id == 0x09 then
    fixed(0)
    return ""
  elseif id == 0x10 then
    t:add_le(F.close_code, argr):append_text(" (" .. close_code_text(arg, channel) .. ")")
    if n > 0 then t:add(F.close_reason, body) end
    return close_code_text(arg, channel) .. (n > 0 and (" \"" .. body:string() .. "\"") or "")
  elseif id == 0x11 or id == 0x12 then
    if fixed(8) then
      t:add_le(id == 0x11 and F.max_data or F.blocked, body)
      return tostring(body:le_uint64())
    end
  elseif id == 0x13 then
    fixed(0)
    t:add_le(F.max_channels, argr)
    return tostring(arg)
  elseif id == 0x14 or id == 0x15 then
    if fixed(8) then t:add(F.path_data, body) end
    return ""
  elseif id == 0x20 then
    t:add_le(F.open_window, argr)
    if n < 4 then
      malformed(t, "OPEN body shorter than 4 bytes")
      return "malformed"
    end
    t:add(F.open_type, body(0, 1))
    t:add(F.open_prio, body(1, 1))
    t:add_le(F.open_reserved, body(2, 2))
    local svc = n > 4 and body(4):string() or ""
    if n > 4 then t:add(F.open_service, body(4)) else t:add(F.open_service, ""):set_generated() end
    return string.format("%s, service \"%s\", priority %d, window %d",
      CHANNEL_TYPES[body(0, 1):uint()] or "type ?", svc, body(1, 1):uint(), arg)
  elseif id == 0x21 then
    fixed(0)
    t:add_le(F.accept_window, argr)
    return "window " .. arg
  elseif id == 0x22 then
    t:add_le(F.refuse_code, argr)
    if n > 0 then t:add(F.refuse_reason, body) end
    return "code " .. arg .. (n > 0 and (" \"" .. body:string() .. "\"") or "")
  elseif id == 0x23 then
    t:add_le(F.reset_code, argr)
    if fixed(8) then t:add_le(F.reset_final, body) end
    return "code " .. arg
  elseif id == 0x30 then
    t:add(F.stream_fin, flags)
    t:add_le(F.stream_offset, argr)
    t:add(F.stream_len, lenr, n):set_generated()
    if n > 0 then t:add(F.stream_data, body) end
    return string.format("offset %d, %d bytes%s", arg, n, bit32.band(flags:uint(), 1) ~= 0 and ", FIN" or "")
  elseif id == 0x31 then
    local frag = bit32.band(flags:uint(), 1) ~= 0
    t:add(F.dg_frag, flags)
    t:add_le(F.dg_seq, argr)
    if frag then
      if n < 9 then
        malformed(t, "fragment body shorter than 9 bytes")
        return "malformed"
      end
      t:add_le(F.dg_total, body(0, 4))
      t:add_le(F.dg_foff, body(4, 4))
      t:add(F.dg_data, body(8))
      return string.format("seq %d, fragment at %d of %d, %d bytes", arg, body(4, 4):le_uint(),
        body(0, 4):le_uint(), n - 8)
    end
    if n > 0 then t:add(F.dg_data, body) end
    return string.format("seq %d, %d bytes", arg, n)
  elseif id == 0x32 then
    t:add_le(F.rep_first, argr)
    if n < 6 then
      malformed(t, "DATAGRAM_REPAIR body shorter than 6 bytes")
      return "malformed"
    end
    t:add(F.rep_k, body(0, 1))
    t:add(F.rep_r, body(1, 1))
    t:add(F.rep_index, body(2, 1))
    t:add(F.rep_reserved, body(3, 1))
    t:add(F.rep_symbol, body(4))
    return string.format("group %d, symbol %d of %d", arg, body(2, 1):uint(), body(1, 1):uint())
  elseif id == 0x82 then
    t:add_le(F.addr_seq, argr)
    if n == 7 and body(0, 1):uint() == 4 then
      t:add(F.addr_family, body(0, 1))
      t:add(F.addr_ipv4, body(1, 4))
      t:add_le(F.addr_port, body(5, 2))
      return tostring(body(1, 4):ipv4()) .. ":" .. body(5, 2):le_uint()
    elseif n == 19 and body(0, 1):uint() == 6 then
      t:add(F.addr_family, body(0, 1))
      t:add(F.addr_ipv6, body(1, 16))
      t:add_le(F.addr_port, body(17, 2))
      return "[" .. tostring(body(1, 16):ipv6()) .. "]:" .. body(17, 2):le_uint()
    end
    malformed(t, "ADDRESS body of " .. n .. " bytes")
    return "malformed"
  elseif id == 0x83 then
    fixed(0)
    t:add_le(F.addr_seq, argr)
    return "seq " .. arg
  else
    t:add(F.ignorable, flags, bit32.band(id, 0x80) ~= 0):set_generated()
    if n > 0 then t:add(F.unknown, body) end
    if bit32.band(id, 0x80) == 0 then
      malformed(t, string.format("unknown message id 0x%02x without bit 7 (a protocol violation)", id))
    end
    return "unknown"
  end
  return ""
end

-- Adds the 8-byte message header at tvb offset h to tree t; returns id,
-- the flags range, body length, argument and the argument's range.
local function message_header(t, tvb, h)
  t:add(F.type, tvb(h, 1))
  t:add(F.mflags, tvb(h + 1, 1))
  t:add_le(F.mlen, tvb(h + 2, 2))
  t:add_le(F.arg, tvb(h + 4, 4))
  return tvb(h, 1):uint(), tvb(h + 1, 1), tvb(h + 2, 2):le_uint(), tvb(h + 4, 4):le_uint(), tvb(h + 4, 4),
    tvb(h + 2, 2)
end

-- Fixed bodies of the handshake messages: {field, size} in order.
local HS_LAYOUT = {
  [0x01] = { { "hs_eph", 32 }, { "hs_static", 48 }, { "hs_payload", 56 }, { "hs_mac1", 16 }, { "hs_mac2", 16 } },
  [0x02] = { { "hs_eph", 32 }, { "hs_payload", 48 }, { "hs_mac1", 16 }, { "hs_mac2", 16 } },
  [0x03] = { { "hs_cookie_nonce", 24 }, { "hs_cookie", 32 } },
}
M.handshake_sizes = { [0x01] = 216, [0x02] = 160, [0x03] = 104 }

-- Decodes the handshake message at offset 40 of a handshake packet.
function M.dissect_handshake(tvb, tree)
  if tvb:len() < 48 then
    malformed(tree, "handshake packet without a message")
    return "malformed handshake"
  end
  local id = tvb(40, 1):uint()
  local mt = tree:add(F.msg, tvb(40))
  mt:set_text(NAMES[id] or string.format("Message 0x%02x", id))
  local _, _, blen = message_header(mt, tvb, 40)
  local layout = HS_LAYOUT[id]
  if not layout then
    malformed(mt, "not a handshake message")
    return NAMES[id] or "unknown"
  end
  if tvb:len() ~= M.handshake_sizes[id] or 48 + blen ~= tvb:len() then
    malformed(mt, string.format("%s packet of %d bytes, %d expected", NAMES[id], tvb:len(), M.handshake_sizes[id]))
  end
  local off = 48
  for _, part in ipairs(layout) do
    if off + part[2] > tvb:len() then break end
    mt:add(F[part[1]], tvb(off, part[2]))
    off = off + part[2]
  end
  return NAMES[id]
end

-- Walks the decrypted messages (§4.1): tvb holds the plaintext, which
-- starts at packet offset 40; align is the session's alignment. Returns the
-- names of the messages, in order.
function M.dissect_messages(tvb, tree, align, channel)
  local seen = {}
  local n = tvb:len() + 40 -- packet offsets
  local fin = 40           -- just past the previous body
  local guard = 0
  while guard < 65536 do
    guard = guard + 1
    local h = math.ceil((fin + 8) / align) * align - 8
    if h + 8 > n then -- fewer than 8 bytes left: the list ends, the rest is padding
      if n > fin then tree:add(F.padding, tvb(fin - 40, n - fin)) end
      break
    end
    if h > fin then tree:add(F.align_pad, tvb(fin - 40, h - fin)) end
    local id = tvb(h - 40, 1):uint()
    if id == 0 then
      local p = tree:add(F.padding, tvb(h - 40, n - h))
      p:set_text(string.format("PADDING: %d bytes", n - h))
      seen[#seen + 1] = "PADDING"
      break
    end
    local blen = tvb(h - 40 + 2, 2):le_uint()
    local total = 8 + blen
    if h + total > n then
      local t = tree:add(F.msg, tvb(h - 40, n - h))
      message_header(t, tvb, h - 40)
      malformed(t, "message body runs past the end of the packet")
      seen[#seen + 1] = "MALFORMED"
      break
    end
    local name = NAMES[id] or string.format("0x%02x", id)
    local t = tree:add(F.msg, tvb(h - 40, total))
    local _, flags, _, arg, argr, lenr = message_header(t, tvb, h - 40)
    local body = blen > 0 and tvb(h - 40 + 8, blen) or nil
    local summary = dissect_body(t, id, flags, arg, body, channel, argr, lenr)
    t:set_text(name .. ((summary ~= nil and summary ~= "") and (": " .. summary) or ""))
    seen[#seen + 1] = name
    fin = h + total
  end
  return seen
end

return M
