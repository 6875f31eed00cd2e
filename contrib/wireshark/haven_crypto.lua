-- haven_crypto.lua: the two AEADs of Haven's transport packets, in pure Lua
-- 5.2 (bit32), for the Wireshark dissector haven.lua. Wireshark 4.0's Lua has
-- no AEAD, so this file implements, from their specifications:
--
--   AES-256           FIPS-197 (the S-box is computed here from its definition)
--   GCM               NIST SP 800-38D (96-bit IV, GHASH with 8-bit tables)
--   ChaCha20          RFC 8439 §2.3-2.4
--   Poly1305          RFC 8439 §2.5 (arithmetic in 13-bit limbs, exact in doubles)
--   ChaCha20-Poly1305 RFC 8439 §2.8
--
-- Both open functions verify the tag. Nothing here is constant-time: it is
-- for reading captures, never for protecting anything. Speed is modest
-- (tens of milliseconds for a 64 KiB packet), and keys' tables are cached.
--
-- It also runs as a plain Lua 5.2 module (lua5.2 -e 'dofile("haven_crypto.lua")')
-- and its self-test checks known answers: FIPS-197 C.3, SP 800-38D's test
-- case 14 (as published with GCM), RFC 8439 §2.4.2, §2.5.2 and §2.8.2, and the sealed
-- packets of docs/PROTOCOL.md §9.6 and §9.7.

local bit32 = bit32
local band, bor, bxor = bit32.band, bit32.bor, bit32.bxor
local lshift, rshift, lrotate, extract = bit32.lshift, bit32.rshift, bit32.lrotate, bit32.extract
local floor = math.floor
local unpack = table.unpack or unpack

local M = {}

---------------------------------------------------------------------------
-- Bytes: strings <-> arrays of byte values (1-based)
---------------------------------------------------------------------------

local CHUNK = 4000 -- below Lua's limit on values returned or passed at once

function M.bytes(s)
  local t, n = {}, #s
  for i = 1, n, CHUNK do
    local part = { string.byte(s, i, math.min(i + CHUNK - 1, n)) }
    for j = 1, #part do t[i + j - 1] = part[j] end
  end
  return t
end

function M.str(t, i, j)
  i, j = i or 1, j or #t
  local parts = {}
  for k = i, j, CHUNK do
    parts[#parts + 1] = string.char(unpack(t, k, math.min(k + CHUNK - 1, j)))
  end
  return table.concat(parts)
end

function M.fromhex(h)
  h = h:gsub("[^%x]", "")
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

function M.tohex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- big-endian word of t[i..i+3]
local function be32(t, i)
  return ((t[i] * 256 + t[i + 1]) * 256 + t[i + 2]) * 256 + t[i + 3]
end

-- little-endian word of t[i..i+3]
local function le32(t, i)
  return ((t[i + 3] * 256 + t[i + 2]) * 256 + t[i + 1]) * 256 + t[i]
end

---------------------------------------------------------------------------
-- AES-256 (FIPS-197), encryption only: CTR and GCM need no decryption
---------------------------------------------------------------------------

local function xtime(a)
  a = a * 2
  if a >= 256 then a = bxor(a, 0x11b) end
  return a
end

-- The S-box from its definition (FIPS-197 §5.1.1): the multiplicative
-- inverse in GF(2^8), then the affine transformation.
local SBOX = {}
do
  local exp, log = {}, {}
  local p = 1
  for i = 0, 254 do
    exp[i], log[p] = p, i
    p = bxor(p, xtime(p)) -- multiply by the generator 3
  end
  for x = 0, 255 do
    local b = 0
    if x ~= 0 then b = exp[(255 - log[x]) % 255] end
    local s = b
    for _ = 1, 4 do
      b = band(bor(lshift(b, 1), rshift(b, 7)), 0xff)
      s = bxor(s, b)
    end
    SBOX[x] = bxor(s, 0x63)
  end
end

-- Round tables: SubBytes, ShiftRows' row and MixColumns of one byte as a
-- big-endian column word.
local TE0, TE1, TE2, TE3 = {}, {}, {}, {}
for x = 0, 255 do
  local s = SBOX[x]
  local s2 = xtime(s)
  local w = bor(lshift(s2, 24), lshift(s, 16), lshift(s, 8), bxor(s2, s))
  TE0[x] = w
  TE1[x] = bit32.rrotate(w, 8)
  TE2[x] = bit32.rrotate(w, 16)
  TE3[x] = bit32.rrotate(w, 24)
end

local function subword(w)
  return bor(lshift(SBOX[extract(w, 24, 8)], 24), lshift(SBOX[extract(w, 16, 8)], 16),
    lshift(SBOX[extract(w, 8, 8)], 8), SBOX[band(w, 0xff)])
end

-- Key expansion for a 32-byte key (string): 60 round-key words (§5.2).
local function aes_expand(key)
  local k = M.bytes(key)
  assert(#k == 32, "AES-256 needs a 32-byte key")
  local w = {}
  for i = 0, 7 do w[i] = be32(k, 4 * i + 1) end
  local rcon = 1
  for i = 8, 59 do
    local t = w[i - 1]
    if i % 8 == 0 then
      t = bxor(subword(lrotate(t, 8)), lshift(rcon, 24))
      rcon = xtime(rcon)
    elseif i % 8 == 4 then
      t = subword(t)
    end
    w[i] = bxor(w[i - 8], t)
  end
  return w
end

-- Encrypts the block given as four big-endian words; returns four words.
local function aes_encrypt(w, s0, s1, s2, s3)
  s0, s1, s2, s3 = bxor(s0, w[0]), bxor(s1, w[1]), bxor(s2, w[2]), bxor(s3, w[3])
  for r = 1, 13 do
    local k = 4 * r
    s0, s1, s2, s3 =
      bxor(TE0[rshift(s0, 24)], TE1[extract(s1, 16, 8)], TE2[extract(s2, 8, 8)], TE3[band(s3, 0xff)], w[k]),
      bxor(TE0[rshift(s1, 24)], TE1[extract(s2, 16, 8)], TE2[extract(s3, 8, 8)], TE3[band(s0, 0xff)], w[k + 1]),
      bxor(TE0[rshift(s2, 24)], TE1[extract(s3, 16, 8)], TE2[extract(s0, 8, 8)], TE3[band(s1, 0xff)], w[k + 2]),
      bxor(TE0[rshift(s3, 24)], TE1[extract(s0, 16, 8)], TE2[extract(s1, 8, 8)], TE3[band(s2, 0xff)], w[k + 3])
  end
  local function last(a, b, c, d, rk)
    return bxor(bor(lshift(SBOX[rshift(a, 24)], 24), lshift(SBOX[extract(b, 16, 8)], 16),
      lshift(SBOX[extract(c, 8, 8)], 8), SBOX[band(d, 0xff)]), rk)
  end
  return last(s0, s1, s2, s3, w[56]), last(s1, s2, s3, s0, w[57]),
    last(s2, s3, s0, s1, w[58]), last(s3, s0, s1, s2, w[59])
end

-- AES-256 of one 16-byte block (strings), for the self-test.
function M.aes256_block(key, block)
  local b = M.bytes(block)
  local o0, o1, o2, o3 = aes_encrypt(aes_expand(key), be32(b, 1), be32(b, 5), be32(b, 9), be32(b, 13))
  local out = {}
  for _, w in ipairs({ o0, o1, o2, o3 }) do
    for sh = 24, 0, -8 do out[#out + 1] = extract(w, sh, 8) end
  end
  return M.str(out)
end

---------------------------------------------------------------------------
-- GCM (SP 800-38D)
---------------------------------------------------------------------------

-- GHASH tables for H: for each byte position j (0-15) and byte value b,
-- the product of H by the 128-bit block holding b at position j and zeros
-- elsewhere, so that X·H is the XOR of 16 lookups. Built from H·x^i
-- (§6.3's algorithm: shift right, reduce by R = 11100001 || 0^120).
local function ghash_tables(h0, h1, h2, h3)
  local bitv = {}
  local v0, v1, v2, v3 = h0, h1, h2, h3
  for i = 0, 127 do
    bitv[i] = { v0, v1, v2, v3 }
    local lsb = band(v3, 1)
    v3 = bor(rshift(v3, 1), lshift(band(v2, 1), 31))
    v2 = bor(rshift(v2, 1), lshift(band(v1, 1), 31))
    v1 = bor(rshift(v1, 1), lshift(band(v0, 1), 31))
    v0 = rshift(v0, 1)
    if lsb == 1 then v0 = bxor(v0, 0xe1000000) end
  end
  local T0, T1, T2, T3 = {}, {}, {}, {}
  for j = 0, 15 do
    local base = j * 256
    T0[base], T1[base], T2[base], T3[base] = 0, 0, 0, 0
    for b = 1, 255 do
      local low = band(b, -b)     -- lowest set bit of b
      local k = 7                 -- its index from the byte's top bit
      local m = low
      while m > 1 do m = m / 2; k = k - 1 end
      local rest, e = base + b - low, bitv[8 * j + k]
      T0[base + b] = bxor(T0[rest], e[1])
      T1[base + b] = bxor(T1[rest], e[2])
      T2[base + b] = bxor(T2[rest], e[3])
      T3[base + b] = bxor(T3[rest], e[4])
    end
  end
  return { T0, T1, T2, T3 }
end

-- One GHASH step: y = (y xor x)·H, all as four big-endian words.
local function gstep(tab, y0, y1, y2, y3, x0, x1, x2, x3)
  local T0, T1, T2, T3 = tab[1], tab[2], tab[3], tab[4]
  local x = { bxor(y0, x0), bxor(y1, x1), bxor(y2, x2), bxor(y3, x3) }
  local z0, z1, z2, z3 = 0, 0, 0, 0
  for w = 1, 4 do
    local xw = x[w]
    local base = (w - 1) * 1024
    for sh = 24, 0, -8 do
      local i = base + extract(xw, sh, 8)
      z0, z1, z2, z3 = bxor(z0, T0[i]), bxor(z1, T1[i]), bxor(z2, T2[i]), bxor(z3, T3[i])
      base = base + 256
    end
  end
  return z0, z1, z2, z3
end

-- Absorbs the bytes t[i..j] into the GHASH state, zero-padded to a block.
local function gabsorb(tab, y0, y1, y2, y3, t, i, j)
  local p = i
  while p <= j do
    local blk = {}
    for k = 0, 15 do blk[k + 1] = (p + k <= j) and t[p + k] or 0 end
    y0, y1, y2, y3 = gstep(tab, y0, y1, y2, y3, be32(blk, 1), be32(blk, 5), be32(blk, 9), be32(blk, 13))
    p = p + 16
  end
  return y0, y1, y2, y3
end

local gcm_cache = {}

local function gcm_key(key)
  local c = gcm_cache[key]
  if not c then
    local w = aes_expand(key)
    c = { w = w, tab = ghash_tables(aes_encrypt(w, 0, 0, 0, 0)) }
    gcm_cache[key] = c
  end
  return c
end

-- Opens an AES-256-GCM message: key 32 bytes, iv 12 bytes, aad, and the
-- ciphertext followed by its 16-byte tag (strings). Returns the plaintext
-- and whether the tag verified (the plaintext is returned either way).
function M.aes256gcm_open(key, iv, aad, sealed)
  if #sealed < 16 then return nil, false end
  local c = gcm_key(key)
  local w, tab = c.w, c.tab
  local ivb = M.bytes(iv)
  local n0, n1, n2 = be32(ivb, 1), be32(ivb, 5), be32(ivb, 9)
  local ct = M.bytes(sealed)
  local clen = #ct - 16
  -- GHASH over A, C and their lengths in bits.
  local a = M.bytes(aad)
  local y0, y1, y2, y3 = gabsorb(tab, 0, 0, 0, 0, a, 1, #a)
  y0, y1, y2, y3 = gabsorb(tab, y0, y1, y2, y3, ct, 1, clen)
  local abits, cbits = #a * 8, clen * 8
  y0, y1, y2, y3 = gstep(tab, y0, y1, y2, y3, floor(abits / 4294967296), abits % 4294967296,
    floor(cbits / 4294967296), cbits % 4294967296)
  local e0, e1, e2, e3 = aes_encrypt(w, n0, n1, n2, 1) -- E(K, J0)
  local tag = { bxor(y0, e0), bxor(y1, e1), bxor(y2, e2), bxor(y3, e3) }
  local ok = true
  for k = 0, 3 do
    if tag[k + 1] ~= be32(ct, clen + 1 + 4 * k) then ok = false end
  end
  -- CTR from inc32(J0).
  local out = {}
  local ctr = 2
  for p = 1, clen, 16 do
    local k0, k1, k2, k3 = aes_encrypt(w, n0, n1, n2, ctr)
    ctr = (ctr + 1) % 4294967296
    local ks = { k0, k1, k2, k3 }
    for q = 0, math.min(15, clen - p) do
      out[p + q] = bxor(ct[p + q], extract(ks[floor(q / 4) + 1], 24 - 8 * (q % 4), 8))
    end
  end
  return M.str(out, 1, clen), ok
end

---------------------------------------------------------------------------
-- ChaCha20 (RFC 8439 §2.3)
---------------------------------------------------------------------------

local SIGMA = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 }
local M32 = 4294967296

-- The 64-byte block for key (8 words), counter and nonce (3 words), as 16
-- little-endian words.
local function chacha_block(kw, counter, nw)
  local s = { SIGMA[1], SIGMA[2], SIGMA[3], SIGMA[4], kw[1], kw[2], kw[3], kw[4],
    kw[5], kw[6], kw[7], kw[8], counter, nw[1], nw[2], nw[3] }
  local x = { unpack(s) }
  local function qr(a, b, c, d)
    local xa, xb, xc, xd = x[a], x[b], x[c], x[d]
    xa = (xa + xb) % M32; xd = lrotate(bxor(xd, xa), 16)
    xc = (xc + xd) % M32; xb = lrotate(bxor(xb, xc), 12)
    xa = (xa + xb) % M32; xd = lrotate(bxor(xd, xa), 8)
    xc = (xc + xd) % M32; xb = lrotate(bxor(xb, xc), 7)
    x[a], x[b], x[c], x[d] = xa, xb, xc, xd
  end
  for _ = 1, 10 do
    qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15); qr(4, 8, 12, 16)
    qr(1, 6, 11, 16); qr(2, 7, 12, 13); qr(3, 8, 9, 14); qr(4, 5, 10, 15)
  end
  for i = 1, 16 do x[i] = (x[i] + s[i]) % M32 end
  return x
end

local function words_le(s, n)
  local b, w = M.bytes(s), {}
  for i = 1, n do w[i] = le32(b, 4 * i - 3) end
  return w
end

-- ChaCha20 encryption (RFC 8439 §2.4) of data from block counter on.
function M.chacha20_xor(key, nonce, counter, data)
  local kw, nw = words_le(key, 8), words_le(nonce, 3)
  local d, out = M.bytes(data), {}
  for p = 1, #d, 64 do
    local ks = chacha_block(kw, counter, nw)
    counter = counter + 1
    for q = 0, math.min(63, #d - p) do
      out[p + q] = bxor(d[p + q], extract(ks[floor(q / 4) + 1], 8 * (q % 4), 8))
    end
  end
  return M.str(out, 1, #d)
end

---------------------------------------------------------------------------
-- Poly1305 (RFC 8439 §2.5): numbers as ten 13-bit limbs (130 = 10 × 13),
-- so that every product and sum stays exact in a double
---------------------------------------------------------------------------

local L = 8192 -- 2^13

-- Limbs of the little-endian number in t[i..i+n-1], plus 2^(8*extra_at)
-- if extra_at is given (the 0x01 byte after a block).
local function limbs(t, i, n, extra_at)
  local out, acc, bits, li = {}, 0, 0, 1
  for k = 0, 16 do
    local byte = 0
    if k < n then byte = t[i + k] elseif extra_at and k == extra_at then byte = 1 end
    acc = acc + byte * 2 ^ bits
    bits = bits + 8
    while bits >= 13 and li <= 10 do
      out[li] = acc % L
      acc = floor(acc / L)
      bits = bits - 13
      li = li + 1
    end
  end
  while li <= 10 do out[li] = acc % L; acc = floor(acc / L); li = li + 1 end
  return out
end

-- h = h·r mod 2^130 - 5, with r5[j] = 5·r[j] for the limbs that wrap.
local function polymul(h, r, r5)
  local d = {}
  for k = 1, 10 do
    local sum = 0
    for i = 1, 10 do
      local j = k - i + 1
      if j >= 1 then sum = sum + h[i] * r[j] else sum = sum + h[i] * r5[j + 10] end
    end
    d[k] = sum
  end
  local c = 0
  for k = 1, 10 do
    local v = d[k] + c
    c = floor(v / L)
    h[k] = v - c * L
  end
  h[1] = h[1] + c * 5
  c = floor(h[1] / L); h[1] = h[1] - c * L; h[2] = h[2] + c
end

-- Poly1305 of the byte array m (all of it) under the 32-byte one-time key
-- given as a byte array; returns the 16-byte tag as a byte array.
local function poly1305(key, m)
  local rb = {}
  for i = 1, 16 do rb[i] = key[i] end
  for _, i in ipairs({ 4, 8, 12, 16 }) do rb[i] = band(rb[i], 15) end
  for _, i in ipairs({ 5, 9, 13 }) do rb[i] = band(rb[i], 252) end
  local r = limbs(rb, 1, 16)
  local r5 = {}
  for i = 1, 10 do r5[i] = 5 * r[i] end
  local h = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
  local n = #m
  for p = 1, n, 16 do
    local len = math.min(16, n - p + 1)
    local blk = limbs(m, p, len, len)
    for k = 1, 10 do h[k] = h[k] + blk[k] end
    polymul(h, r, r5)
  end
  -- Fully carried h, then h mod p: h + 5 - 2^130 if that is not negative.
  for _ = 1, 2 do
    local c = 0
    for k = 1, 10 do
      local v = h[k] + c
      c = floor(v / L)
      h[k] = v - c * L
    end
    h[1] = h[1] + 5 * c
  end
  local g, c = {}, 5
  for k = 1, 10 do
    local v = h[k] + c
    c = floor(v / L)
    g[k] = v - c * L
  end
  if c > 0 then h = g end
  -- (h + s) mod 2^128, little-endian.
  local out, acc, bits, li = {}, 0, 0, 1
  local carry = 0
  for i = 1, 16 do
    while bits < 8 do
      acc = acc + (h[li] or 0) * 2 ^ bits
      bits = bits + 13
      li = li + 1
    end
    local v = acc % 256 + key[16 + i] + carry
    acc = floor(acc / 256)
    bits = bits - 8
    out[i] = v % 256
    carry = floor(v / 256)
  end
  return out
end

function M.poly1305(key, msg) return M.str(poly1305(M.bytes(key), M.bytes(msg))) end

local function le64bytes(t, v)
  for _ = 1, 8 do
    t[#t + 1] = v % 256
    v = floor(v / 256)
  end
end

-- Opens a ChaCha20-Poly1305 message (RFC 8439 §2.8): key 32 bytes, nonce 12
-- bytes, aad, ciphertext followed by the 16-byte tag. Returns the
-- plaintext and whether the tag verified.
function M.chacha20poly1305_open(key, nonce, aad, sealed)
  if #sealed < 16 then return nil, false end
  local kw, nw = words_le(key, 8), words_le(nonce, 3)
  local b0 = chacha_block(kw, 0, nw)
  local otk = {}
  for i = 1, 8 do
    local w = b0[i]
    for s = 0, 24, 8 do otk[#otk + 1] = extract(w, s, 8) end
  end
  local ct = M.bytes(sealed)
  local clen = #ct - 16
  local a = M.bytes(aad)
  local mac = {}
  local function pad(t, n)
    for i = 1, n do mac[#mac + 1] = t[i] end
    while #mac % 16 ~= 0 do mac[#mac + 1] = 0 end
  end
  pad(a, #a)
  pad(ct, clen)
  le64bytes(mac, #a)
  le64bytes(mac, clen)
  local tag = poly1305(otk, mac)
  local ok = true
  for i = 1, 16 do
    if tag[i] ~= ct[clen + i] then ok = false end
  end
  return M.chacha20_xor(key, nonce, 1, sealed:sub(1, clen)), ok
end

---------------------------------------------------------------------------
-- Self-test: known answers
---------------------------------------------------------------------------

local H = M.fromhex

-- The sealed packets of docs/PROTOCOL.md §9.6 (ChaCha20-Poly1305) and §9.7
-- (AES-256-GCM), key 32 × 0x4b, and their plaintext (§9.2's messages).
M.doc_examples = {
  { name = "PROTOCOL.md §9.6", cipher = "chacha",
    packet = H("8e884acdef4618f2 0000000001000000 f244e066fecaad0b 5fc207ad4e3d2c1b 0100000000000000" ..
      "b28b0c10ae95c2eb 2b0b6eae24ca4ab0 f5627d8a1f015f83 7d7032ed48" ..
      "37f428f738825810 e0d79a7d03426efe") },
  { name = "PROTOCOL.md §9.7", cipher = "aesgcm",
    packet = H("86b5ef6fb91e345b 0000000001000000 bf21ab9dfecaad0b 54e42ee04e3d2c1b 0100000000000000" ..
      "00bc4c3d0925df62 fb82254526e977cb c7563508a1c5737a c91a7105fb" ..
      "b9121b58bbe95934 a304ddd897291ac7") },
}
M.doc_plaintext = H("2000080000000400 010300006563686f 3000050000000000 68656c6c6f")

-- Returns true, or false and a message naming the first failure.
function M.selftest()
  local checks = {}
  local function check(name, got, want)
    checks[#checks + 1] = name
    if got ~= want then
      error(string.format("%s: got %s, want %s", name, M.tohex(got or ""), M.tohex(want)), 0)
    end
  end
  local ok, err = pcall(function()
    check("FIPS-197 C.3 AES-256",
      M.aes256_block(H("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        H("00112233445566778899aabbccddeeff")), H("8ea2b7ca516745bfeafc49904b496089"))
    local zero32, zero16, zero12 = string.rep("\0", 32), string.rep("\0", 16), string.rep("\0", 12)
    local pt, tagok = M.aes256gcm_open(zero32, zero12, "",
      H("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"))
    check("GCM test case 14 plaintext", pt, zero16)
    check("GCM test case 14 tag", tostring(tagok), "true")
    check("RFC 8439 §2.5.2 Poly1305",
      M.poly1305(H("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b"),
        "Cryptographic Forum Research Group"), H("a8061dc1305136c6c22b8baf0c0127a9"))
    local sunscreen = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip " ..
      "for the future, sunscreen would be it."
    check("RFC 8439 §2.4.2 ChaCha20",
      M.chacha20_xor(H("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        H("000000000000004a00000000"), 1, sunscreen),
      H("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b357" ..
        "1639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736" ..
        "5af90bbf74a35be6b40b8eedf2785e42874d"))
    local key = {}
    for i = 0, 31 do key[#key + 1] = string.char(0x80 + i) end
    pt, tagok = M.chacha20poly1305_open(table.concat(key), H("070000004041424344454647"),
      H("50515253c0c1c2c3c4c5c6c7"),
      H("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca96712" ..
        "82fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58" ..
        "fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" ..
        "1ae10b594f09e26a7e902ecbd0600691"))
    check("RFC 8439 §2.8.2 plaintext", pt, sunscreen)
    check("RFC 8439 §2.8.2 tag", tostring(tagok), "true")
    local k4b = string.rep("\75", 32)
    for _, ex in ipairs(M.doc_examples) do
      local p = ex.packet
      local nonce
      if ex.cipher == "chacha" then
        nonce = H("00000000 0100000000000000")
        pt, tagok = M.chacha20poly1305_open(k4b, nonce, p:sub(1, 40), p:sub(41))
      else
        nonce = H("00000000 0000000000000001")
        pt, tagok = M.aes256gcm_open(k4b, nonce, p:sub(1, 40), p:sub(41))
      end
      check(ex.name .. " plaintext", pt, M.doc_plaintext)
      check(ex.name .. " tag", tostring(tagok), "true")
    end
    -- A changed byte must fail the tag: the checks above can fail.
    local p = M.doc_examples[1].packet
    local bad = p:sub(1, 41) .. string.char(bxor(p:byte(42), 1)) .. p:sub(43)
    _, tagok = M.chacha20poly1305_open(k4b, H("000000000100000000000000"), bad:sub(1, 40), bad:sub(41))
    check("ChaCha20-Poly1305 rejects a changed byte", tostring(tagok), "false")
    p = M.doc_examples[2].packet
    bad = p:sub(1, 41) .. string.char(bxor(p:byte(42), 1)) .. p:sub(43)
    _, tagok = M.aes256gcm_open(k4b, H("000000000000000000000001"), bad:sub(1, 40), bad:sub(41))
    check("AES-256-GCM rejects a changed byte", tostring(tagok), "false")
  end)
  if not ok then return false, err end
  return true, #checks .. " known answers"
end

return M
