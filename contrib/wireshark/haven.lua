-- haven.lua: a Wireshark (4.0 and later) dissector for Haven, the secure
-- multi-channel transport of github.com/havenproto/haven (docs/PROTOCOL.md).
--
--   wireshark -X lua_script:/path/to/contrib/wireshark/haven.lua capture.pcap
--   tshark    -X lua_script:haven.lua -o haven.keylog_file:keys.log -r capture.pcap
--
-- It decodes the 40-byte header of every packet (§3) and the handshake
-- messages (§7), on UDP and on the TCP fallback (§8). Given a key log
-- (docs/KEYLOG.md: the preference haven.keylog_file, or else the
-- HAVEN_KEYLOGFILE environment variable) it decrypts transport packets,
-- verifies their tags, and decodes every message (§4-5). contrib/wireshark/
-- README.md lists the fields. It needs haven_crypto.lua and haven_msgs.lua
-- from the same directory.

local script_dir = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""

-- Loads a helper file of this dissector from the script's directory (or
-- the personal plugins directory). The argument "haven" tells the helper
-- it is loaded by this file, not on its own as a plugin.
local function load_helper(name)
  local tried = {}
  for _, dir in ipairs({ script_dir, Dir.personal_plugins_path() .. "/", Dir.global_plugins_path() .. "/" }) do
    local chunk, err = loadfile(dir .. name)
    if chunk then return chunk("haven") end
    tried[#tried + 1] = err
  end
  error("haven.lua: cannot load " .. name .. ": " .. table.concat(tried, "; "))
end

local crypto = load_helper("haven_crypto.lua")
local msgs = load_helper("haven_msgs.lua")

local haven = Proto("haven", "Haven")

---------------------------------------------------------------------------
-- Constants of docs/PROTOCOL.md
---------------------------------------------------------------------------

local HEADER_LEN, TAG_LEN = 40, 16

-- Protocol ids (§2, §2.1), as the 8 raw bytes.
local SUITES = {
  [crypto.fromhex("8e884acdef4618f2")] = { name = "ChaCha20-Poly1305", construction = "Noise_IK_25519_ChaChaPoly_BLAKE2s", cipher = "chacha" },
  [crypto.fromhex("86b5ef6fb91e345b")] = { name = "AES-256-GCM", construction = "Noise_IK_25519_AESGCM_BLAKE2s", cipher = "aesgcm" },
}

---------------------------------------------------------------------------
-- Fields
---------------------------------------------------------------------------

local F = {
  proto_id = ProtoField.bytes("haven.proto_id", "Protocol id"),
  suite = ProtoField.string("haven.suite", "Construction"),
  flags = ProtoField.uint8("haven.flags", "Flags", base.HEX),
  flag_h = ProtoField.bool("haven.flags.handshake", "Handshake (H)", 8, nil, 0x01),
  flag_k = ProtoField.bool("haven.flags.key_phase", "Key phase (K)", 8, nil, 0x02),
  flag_s = ProtoField.bool("haven.flags.spin", "Spin (S)", 8, nil, 0x04),
  flag_rsv = ProtoField.uint8("haven.flags.reserved", "Reserved flags", base.HEX, nil, 0xf8),
  reserved = ProtoField.uint8("haven.reserved", "Reserved", base.HEX),
  length = ProtoField.uint16("haven.length", "Payload length", base.DEC),
  channel = ProtoField.uint32("haven.channel", "Channel", base.DEC),
  dst_id = ProtoField.bytes("haven.dst_id", "Destination peer id"),
  dst_tag = ProtoField.bytes("haven.dst_id.tag", "Authentication tag"),
  dst_eph = ProtoField.uint32("haven.dst_id.ephemeral", "Ephemeral", base.HEX),
  src_id = ProtoField.bytes("haven.src_id", "Source peer id"),
  src_tag = ProtoField.bytes("haven.src_id.tag", "Authentication tag"),
  src_eph = ProtoField.uint32("haven.src_id.ephemeral", "Ephemeral", base.HEX),
  pn = ProtoField.uint64("haven.pn", "Packet number", base.DEC),
  payload = ProtoField.bytes("haven.payload", "Encrypted payload"),
  aead_tag = ProtoField.bytes("haven.tag", "AEAD tag"),
  decrypted = ProtoField.bool("haven.decrypted", "Decrypted (tag verified)"),
  decryption = ProtoField.string("haven.decryption", "Decryption"),
  keylog_line = ProtoField.uint32("haven.keylog_line", "Key log line", base.DEC),
  align = ProtoField.uint8("haven.alignment", "Alignment", base.DEC),
  messages = ProtoField.string("haven.messages", "Messages"),
  gso = ProtoField.string("haven.gso_segment", "UDP GSO segment"),
}

local fields = {}
for _, f in pairs(F) do fields[#fields + 1] = f end
for _, f in ipairs(msgs.fields) do fields[#fields + 1] = f end
haven.fields = fields

local E = {
  no_key = ProtoExpert.new("haven.no_key", "No key for this packet in the key log",
    expert.group.DECRYPTION, expert.severity.NOTE),
  bad_tag = ProtoExpert.new("haven.bad_tag", "The tag verifies under no key of the key log",
    expert.group.DECRYPTION, expert.severity.WARN),
  bad_header = ProtoExpert.new("haven.bad_header", "Malformed Haven header",
    expert.group.MALFORMED, expert.severity.ERROR),
}
local experts = { E.no_key, E.bad_tag, E.bad_header }
for _, e in ipairs(msgs.experts) do experts[#experts + 1] = e end
haven.experts = experts

---------------------------------------------------------------------------
-- Preferences
---------------------------------------------------------------------------

haven.prefs.port = Pref.uint("UDP and TCP port", 4433,
  "Port decoded as Haven (haven serve's default is 4433; 0 for none). Haven is also found on any port by its protocol id (heuristics).")
haven.prefs.heuristics = Pref.bool("Find Haven on any port", true,
  "Recognise Haven packets on every UDP and TCP port by their protocol id (heuristic dissectors).")
haven.prefs.keylog_file = Pref.string("Key log file", "",
  "File of HAVEN_TRAFFIC_KEY lines (docs/KEYLOG.md), written by Haven with HAVEN_KEYLOGFILE set. " ..
  "Empty: the HAVEN_KEYLOGFILE environment variable, if set. The key log is a secret.")

---------------------------------------------------------------------------
-- Key log (docs/KEYLOG.md)
---------------------------------------------------------------------------

local keylog = { path = nil, size = -1, keys = {} }
local decrypted_cache = {}

local function keylog_path()
  local p = haven.prefs.keylog_file
  if p == nil or p == "" then p = os.getenv("HAVEN_KEYLOGFILE") or "" end
  return p
end

-- (Re)reads the key log if its name or size changed since the last read.
local function load_keylog()
  local path = keylog_path()
  if path == "" then
    keylog.path, keylog.size, keylog.keys = path, -1, {}
    return
  end
  local f = io.open(path, "r")
  if not f then
    keylog.path, keylog.size, keylog.keys = path, -1, {}
    return
  end
  local size = f:seek("end")
  if path == keylog.path and size == keylog.size then
    f:close()
    return
  end
  f:seek("set")
  local keys, n = {}, 0
  for line in f:lines() do
    n = n + 1
    local proto, src, dst, phase, align, key = line:match(
      "^HAVEN_TRAFFIC_KEY (%x+) (%x+) (%x+) ([01]) (%d+) (%x+)%s*$")
    if proto and #proto == 16 and #src == 16 and #dst == 16 and #key == 64 then
      local idx = table.concat({ proto:lower(), src:lower(), dst:lower(), phase }, " ")
      keys[idx] = keys[idx] or {}
      table.insert(keys[idx], { key = crypto.fromhex(key), align = tonumber(align), line = n })
    end
  end
  f:close()
  keylog.path, keylog.size, keylog.keys = path, size, keys
  decrypted_cache = {}
end

function haven.init()
  decrypted_cache = {}
  keylog.path, keylog.size = nil, -1
  load_keylog()
end

-- Tries every key the log has for the packet's protocol id, peer ids and K
-- flag. Returns the plaintext, the key entry and a status text; the
-- plaintext is nil unless a tag verified.
local function decrypt(tvb, suite, kbit)
  local hdr = tvb:raw(0, HEADER_LEN)
  local idx = table.concat({ crypto.tohex(hdr:sub(1, 8)), crypto.tohex(hdr:sub(25, 32)),
    crypto.tohex(hdr:sub(17, 24)), kbit and "1" or "0" }, " ")
  local cache_key = idx .. " " .. crypto.tohex(hdr:sub(33, 40)) .. " " .. crypto.tohex(tvb:raw(tvb:len() - TAG_LEN, TAG_LEN))
  local hit = decrypted_cache[cache_key]
  if hit then return hit.plain, hit.entry, hit.status end
  local cands = keylog.keys[idx]
  if not cands then
    load_keylog() -- the log may have grown since it was read (a live capture)
    cands = keylog.keys[idx]
  end
  local plain, entry, status
  if next(keylog.keys) == nil then
    status = "not decrypted: no key log (set haven.keylog_file, or HAVEN_KEYLOGFILE)"
    if keylog.path ~= "" then status = "not decrypted: the key log " .. keylog.path .. " is empty or unreadable" end
  elseif not cands then
    status = "not decrypted: no key in the key log for these peer ids and key phase"
  else
    -- Associated data: the header with its payload length field as zero
    -- (§3.4); nonce: 0x00000000 || packet number, little-endian for
    -- ChaCha20-Poly1305 (§7.5), big-endian for AES-256-GCM (§2.1).
    local ad = hdr:sub(1, 10) .. "\0\0" .. hdr:sub(13, 40)
    local pnle = hdr:sub(33, 40)
    local sealed = tvb:raw(HEADER_LEN, tvb:len() - HEADER_LEN)
    status = "not decrypted: the tag verifies under none of the " .. #cands ..
      " keys the key log has for these peer ids and key phase"
    for _, c in ipairs(cands) do
      local pt, ok
      if suite.cipher == "chacha" then
        pt, ok = crypto.chacha20poly1305_open(c.key, "\0\0\0\0" .. pnle, ad, sealed)
      else
        pt, ok = crypto.aes256gcm_open(c.key, "\0\0\0\0" .. pnle:reverse(), ad, sealed)
      end
      if ok then
        plain, entry, status = pt, c, "decrypted, tag verified (" .. suite.name .. ")"
        break
      end
    end
  end
  decrypted_cache[cache_key] = { plain = plain, entry = entry, status = status }
  return plain, entry, status
end

---------------------------------------------------------------------------
-- Packets
---------------------------------------------------------------------------

local function hexid(tvb, off) return crypto.tohex(tvb:raw(off, 8)) end

-- Adds a peer id (§3.2) at offset off.
local function peer_id(tree, tvb, off, f, ftag, feph)
  local t = tree:add(f, tvb(off, 8))
  t:add(ftag, tvb(off, 4))
  t:add_le(feph, tvb(off + 4, 4))
  t:append_text(string.format(" (tag %s, ephemeral 0x%08x)", crypto.tohex(tvb:raw(off, 4)), tvb(off + 4, 4):le_uint()))
end

-- Dissects one Haven packet, which fills tvb. stream tells whether it came
-- over a stream transport (the payload length field is then set, §8); gso
-- describes the packet's place in a UDP GSO super-datagram, if it is in one.
local function dissect_packet(tvb, pinfo, root, stream, gso)
  local n = tvb:len()
  local suite = SUITES[tvb:raw(0, 8)]
  local tree = root:add(haven, tvb())
  if gso then tree:add(F.gso, gso):set_generated() end
  tree:add(F.proto_id, tvb(0, 8))
  tree:add(F.suite, tvb(0, 8), suite.name):set_generated()
  local flags = tvb(8, 1):uint()
  local ft = tree:add(F.flags, tvb(8, 1))
  ft:add(F.flag_h, tvb(8, 1))
  ft:add(F.flag_k, tvb(8, 1))
  ft:add(F.flag_s, tvb(8, 1))
  ft:add(F.flag_rsv, tvb(8, 1))
  tree:add(F.reserved, tvb(9, 1))
  tree:add_le(F.length, tvb(10, 2))
  tree:add_le(F.channel, tvb(12, 4))
  peer_id(tree, tvb, 16, F.dst_id, F.dst_tag, F.dst_eph)
  peer_id(tree, tvb, 24, F.src_id, F.src_tag, F.src_eph)
  tree:add_le(F.pn, tvb(32, 8))
  local channel, pn = tvb(12, 4):le_uint(), tvb(32, 8):le_uint64()
  local handshake = bit32.band(flags, 1) ~= 0
  local kbit = bit32.band(flags, 2) ~= 0
  if bit32.band(flags, 0xf8) ~= 0 or tvb(9, 1):uint() ~= 0 then
    tree:add_proto_expert_info(E.bad_header, "reserved bits set")
  end
  if stream and tvb(10, 2):le_uint() ~= n - HEADER_LEN then
    tree:add_proto_expert_info(E.bad_header, "payload length does not match the stream framing")
  elseif not stream and tvb(10, 2):le_uint() ~= 0 then
    tree:add_proto_expert_info(E.bad_header, "payload length set on a datagram transport")
  end

  local info
  if handshake then
    if bit32.band(flags, 0x06) ~= 0 or channel ~= 0 or pn ~= UInt64.new(0) then
      tree:add_proto_expert_info(E.bad_header, "handshake packet with K, S, a channel or a packet number")
    end
    info = msgs.dissect_handshake(tvb, tree)
    tree:add(F.messages, info):set_generated()
    tree:append_text(", " .. info)
  else
    local ttext = string.format(", ch %d, pn %s%s", channel, tostring(pn), kbit and ", K" or "")
    tree:append_text(ttext)
    if n < HEADER_LEN + TAG_LEN then
      tree:add_proto_expert_info(E.bad_header, "transport packet shorter than 56 bytes")
      return "malformed"
    end
    local plain, entry, status = decrypt(tvb, suite, kbit)
    if plain then
      tree:add(F.decrypted, true):set_generated()
      tree:add(F.decryption, status):set_generated()
      tree:add(F.keylog_line, entry.line):set_generated()
      tree:add(F.align, entry.align):set_generated()
      tree:add(F.aead_tag, tvb(n - TAG_LEN, TAG_LEN))
      local names = { "(empty)" }
      if #plain > 0 then
        local ptvb = ByteArray.new(plain, true):tvb("Decrypted Haven payload")
        names = msgs.dissect_messages(ptvb, tree, entry.align, channel)
      end
      local list = table.concat(names, ", ")
      tree:add(F.messages, list):set_generated()
      info = string.format("ch %d pn %s%s: %s", channel, tostring(pn), kbit and " K" or "", list)
    else
      tree:add(F.decrypted, false):set_generated()
      local st = tree:add(F.decryption, status):set_generated()
      if not status:find("tag verifies") then
        st:add_proto_expert_info(E.no_key)
      else
        st:add_proto_expert_info(E.bad_tag)
      end
      if n > HEADER_LEN + TAG_LEN then tree:add(F.payload, tvb(HEADER_LEN, n - HEADER_LEN - TAG_LEN)) end
      tree:add(F.aead_tag, tvb(n - TAG_LEN, TAG_LEN))
      info = string.format("ch %d pn %s%s (encrypted)", channel, tostring(pn), kbit and " K" or "")
    end
  end
  return info
end

-- Whether tvb can start a Haven packet: a known protocol id and a header.
local function looks_like_haven(tvb)
  if tvb:len() < HEADER_LEN then return false end
  if not SUITES[tvb:raw(0, 8)] then return false end
  return bit32.band(tvb(8, 1):uint(), 0xf8) == 0 and tvb(9, 1):uint() == 0
end

-- The Info column: one entry per Haven packet of the frame (a TCP segment
-- may carry several).
local info_frame = nil
local function set_info(pinfo, text)
  pinfo.cols.protocol = "Haven"
  if info_frame == pinfo.number then
    pinfo.cols.info:append(" | " .. text)
  else
    info_frame = pinfo.number
    pinfo.cols.info:set(text)
  end
end

-- UDP generic segmentation offload (Linux): a capture on the sending host
-- before segmentation (on lo, say) shows a "super-datagram" holding several
-- packets for one receiver back to back, each of the segment size but the
-- last, which may be shorter. Returns the packets' lengths, or nil if tvb
-- is one packet. The segment size is the first offset at which the
-- protocol id and the destination peer id recur (a chance match inside a
-- ciphertext has probability 2^-128); every later segment must start so.
local function gso_segments(tvb)
  local n = tvb:len()
  if n < 2 * (HEADER_LEN + TAG_LEN) or bit32.band(tvb(8, 1):uint(), 1) ~= 0 then return nil end
  local raw = tvb:raw()
  local id, dst = raw:sub(1, 8), raw:sub(17, 24)
  local size
  local pos = HEADER_LEN + TAG_LEN + 1
  for _ = 1, n do
    local k = raw:find(id, pos, true)
    if not k then return nil end
    if raw:sub(k + 16, k + 23) == dst then
      size = k - 1
      break
    end
    pos = k + 1
  end
  if not size then return nil end
  local lens, off = {}, 0
  while off < n do
    local len = math.min(size, n - off)
    if len < HEADER_LEN + TAG_LEN or raw:sub(off + 1, off + 8) ~= id or raw:sub(off + 17, off + 24) ~= dst then
      return nil
    end
    lens[#lens + 1] = len
    off = off + len
  end
  return lens
end

local PT_TCP = 2 -- port_type of a TCP packet (epan's port_type enum)

-- TCP fallback (§8): packets back to back, each 40 bytes of header and the
-- number of bytes in its payload length field.
local function tcp_pdu_len(tvb, pinfo, off)
  return HEADER_LEN + tvb(off + 10, 2):le_uint()
end

local function tcp_pdu(tvb, pinfo, tree)
  if not looks_like_haven(tvb) then return 0 end
  set_info(pinfo, dissect_packet(tvb, pinfo, tree, true))
  return tvb:len()
end

function haven.dissector(tvb, pinfo, tree)
  if pinfo.port_type == PT_TCP then
    return dissect_tcp_pdus(tvb, tree, HEADER_LEN, tcp_pdu_len, tcp_pdu)
  end
  if not looks_like_haven(tvb) then return 0 end
  local lens = gso_segments(tvb)
  if not lens then
    set_info(pinfo, dissect_packet(tvb, pinfo, tree, false))
    return tvb:len()
  end
  local off = 0
  for i, len in ipairs(lens) do
    local seg = tvb(off, len):tvb()
    local info = dissect_packet(seg, pinfo, tree, false, string.format("%d of %d, segment size %d", i, #lens, lens[1]))
    set_info(pinfo, info)
    off = off + len
  end
  return tvb:len()
end

---------------------------------------------------------------------------
-- Registration: the port preference, and heuristics on UDP and TCP that
-- recognise the protocol ids
---------------------------------------------------------------------------

local registered_port = 0

local function register_port()
  local udp, tcp = DissectorTable.get("udp.port"), DissectorTable.get("tcp.port")
  if registered_port ~= 0 then
    udp:remove(registered_port, haven)
    tcp:remove(registered_port, haven)
  end
  registered_port = haven.prefs.port
  if registered_port ~= 0 then
    udp:add(registered_port, haven)
    tcp:add(registered_port, haven)
  end
end

function haven.prefs_changed()
  if haven.prefs.port ~= registered_port then register_port() end
  keylog.path, keylog.size = nil, -1
  decrypted_cache = {}
  load_keylog()
end

register_port()

haven:register_heuristic("udp", function(tvb, pinfo, tree)
  if not haven.prefs.heuristics or not looks_like_haven(tvb) then return false end
  haven.dissector(tvb, pinfo, tree)
  return true
end)

haven:register_heuristic("tcp", function(tvb, pinfo, tree)
  if not haven.prefs.heuristics or not looks_like_haven(tvb) then return false end
  pinfo.conversation = haven -- later segments need not start a packet
  haven.dissector(tvb, pinfo, tree)
  return true
end)

