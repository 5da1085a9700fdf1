-- Wireshark dissector for udptcp, a TCP-like reliable byte stream over UDP.
--
-- Load it with:   wireshark -X lua_script:contrib/wireshark/udptcp.lua capture.pcap
--            or:  copy it into ~/.local/lib/wireshark/plugins/ (Wireshark's personal plugins).
-- Capture without root with udptcp's own pcap writer (the pcap= option, --pcap FILE).
--
-- The header (docs/PROTOCOL.md, udptcp/wire.py):
--   0: version (1 octet, 1)   1: header length in 32-bit words (1 octet)
--   2: flags (16 bits, TCP's bit positions: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10)
--   4: sequence number (32)   8: acknowledgement number (32)   12: window in octets (32)
--  16: CRC-32 over octets 0..15 and everything after octet 19 (options and payload)
--  20: options, TCP's encoding: EOL 0, NOP 1, MSS 2, SACK-permitted 4, SACK 5, timestamps 8,
--      MTU-probe-permitted 40, MTU probe 41, MTU probe ACK 42
-- UDP datagrams are recognised by a heuristic (version 1, a sane header length, a valid
-- CRC-32) and the rest of their conversation follows, so Statistics > Flow Graph shows each
-- connection. Decode As... > udptcp works too, for a port of your choice.

local udptcp = Proto("udptcp", "udptcp (TCP-like stream over UDP)")

local flag_names = { [0x01] = "FIN", [0x02] = "SYN", [0x04] = "RST", [0x08] = "PSH", [0x10] = "ACK" }
local option_names = {
    [0] = "EOL", [1] = "NOP", [2] = "MSS", [4] = "SACK permitted", [5] = "SACK", [8] = "Timestamps",
    [40] = "MTU probe permitted", [41] = "MTU probe", [42] = "MTU probe ACK",
}

local f = udptcp.fields
f.version = ProtoField.uint8("udptcp.version", "Version")
f.hdr_len = ProtoField.uint8("udptcp.hdr_len", "Header length", base.DEC)
f.flags = ProtoField.uint16("udptcp.flags", "Flags", base.HEX)
f.flag_fin = ProtoField.bool("udptcp.flags.fin", "FIN", 16, nil, 0x01)
f.flag_syn = ProtoField.bool("udptcp.flags.syn", "SYN", 16, nil, 0x02)
f.flag_rst = ProtoField.bool("udptcp.flags.rst", "RST", 16, nil, 0x04)
f.flag_psh = ProtoField.bool("udptcp.flags.psh", "PSH", 16, nil, 0x08)
f.flag_ack = ProtoField.bool("udptcp.flags.ack", "ACK", 16, nil, 0x10)
f.flags_str = ProtoField.string("udptcp.flags.str", "Flags")
f.seq = ProtoField.uint32("udptcp.seq", "Sequence number")
f.ack = ProtoField.uint32("udptcp.ack", "Acknowledgement number")
f.window = ProtoField.uint32("udptcp.window", "Window")
f.checksum = ProtoField.uint32("udptcp.checksum", "Checksum (CRC-32)", base.HEX)
f.checksum_status = ProtoField.string("udptcp.checksum.status", "Checksum status")
f.len = ProtoField.uint32("udptcp.len", "Payload length")
f.option = ProtoField.uint8("udptcp.option", "Option kind", base.DEC, option_names)
f.mss = ProtoField.uint16("udptcp.options.mss", "MSS")
f.sack_perm = ProtoField.bool("udptcp.options.sack_perm", "SACK permitted")
f.sack_le = ProtoField.uint32("udptcp.options.sack_le", "SACK left edge")
f.sack_re = ProtoField.uint32("udptcp.options.sack_re", "SACK right edge")
f.tsval = ProtoField.uint32("udptcp.options.tsval", "TSval")
f.tsecr = ProtoField.uint32("udptcp.options.tsecr", "TSecr")
f.mtu_probe_perm = ProtoField.bool("udptcp.options.mtu_probe_perm", "MTU probe permitted")
f.mtu_probe = ProtoField.uint32("udptcp.options.mtu_probe", "MTU probe id")
f.mtu_probe_ack = ProtoField.uint32("udptcp.options.mtu_probe_ack", "MTU probe ACK id")
f.payload = ProtoField.bytes("udptcp.payload", "Payload")

local ef_bad_checksum = ProtoExpert.new("udptcp.checksum.bad", "Bad checksum", expert.group.CHECKSUM, expert.severity.ERROR)
local ef_bad_option = ProtoExpert.new("udptcp.option.bad", "Malformed option", expert.group.MALFORMED, expert.severity.ERROR)
udptcp.experts = { ef_bad_checksum, ef_bad_option }

-- CRC-32 (IEEE 802.3, as zlib's crc32), table-driven, with Wireshark's bit library.
local crc_table = {}
for i = 0, 255 do
    local c = i
    for _ = 1, 8 do
        if bit.band(c, 1) == 1 then
            c = bit.bxor(bit.rshift(c, 1), 0xEDB88320)
        else
            c = bit.rshift(c, 1)
        end
    end
    crc_table[i] = c
end

local function crc32_update(crc, bytes)
    for i = 0, bytes:len() - 1 do
        crc = bit.bxor(crc_table[bit.band(bit.bxor(crc, bytes:get_index(i)), 0xFF)], bit.rshift(crc, 8))
    end
    return crc
end

local function crc32(tvb)
    local crc = 0xFFFFFFFF
    crc = crc32_update(crc, tvb:range(0, 16):bytes())
    if tvb:len() > 20 then
        crc = crc32_update(crc, tvb:range(20):bytes())
    end
    local value = bit.bxor(crc, 0xFFFFFFFF)
    if value < 0 then value = value + 4294967296 end
    return value
end

local function flag_text(flags)
    local names = {}
    for _, bit_value in ipairs({ 0x02, 0x10, 0x01, 0x04, 0x08 }) do
        if bit.band(flags, bit_value) ~= 0 then names[#names + 1] = flag_names[bit_value] end
    end
    if #names == 0 then return "-" end
    return table.concat(names, "|")
end

local function dissect_options(tvb, tree, pinfo, from, to)
    local i = from
    while i < to do
        local kind = tvb(i, 1):uint()
        if kind == 0 then
            tree:add(f.option, tvb(i, 1))
            break
        elseif kind == 1 then
            i = i + 1
        else
            if i + 1 >= to then
                tree:add_proto_expert_info(ef_bad_option, "option without a length")
                return
            end
            local length = tvb(i + 1, 1):uint()
            if length < 2 or i + length > to then
                tree:add_proto_expert_info(ef_bad_option, "option length out of bounds")
                return
            end
            local opt = tree:add(f.option, tvb(i, 1))
            opt:set_len(length)
            if kind == 2 and length == 4 then
                opt:add(f.mss, tvb(i + 2, 2))
            elseif kind == 4 then
                opt:add(f.sack_perm, tvb(i, 1), true)
            elseif kind == 5 then
                local j = i + 2
                while j + 8 <= i + length do
                    opt:add(f.sack_le, tvb(j, 4))
                    opt:add(f.sack_re, tvb(j + 4, 4))
                    j = j + 8
                end
            elseif kind == 8 and length == 10 then
                opt:add(f.tsval, tvb(i + 2, 4))
                opt:add(f.tsecr, tvb(i + 6, 4))
            elseif kind == 40 then
                opt:add(f.mtu_probe_perm, tvb(i, 1), true)
            elseif kind == 41 and length == 6 then
                opt:add(f.mtu_probe, tvb(i + 2, 4))
            elseif kind == 42 and length == 6 then
                opt:add(f.mtu_probe_ack, tvb(i + 2, 4))
            end
            i = i + length
        end
    end
end

local function looks_like_udptcp(tvb)
    if tvb:len() < 20 or tvb(0, 1):uint() ~= 1 then return false end
    local header_len = tvb(1, 1):uint() * 4
    return header_len >= 20 and header_len <= tvb:len()
end

function udptcp.dissector(tvb, pinfo, tree)
    if not looks_like_udptcp(tvb) then return 0 end
    pinfo.cols.protocol = "udptcp"
    local header_len = tvb(1, 1):uint() * 4
    local flags = tvb(2, 2):uint()
    local payload_len = tvb:len() - header_len
    local subtree = tree:add(udptcp, tvb(), "udptcp, " .. flag_text(flags) .. ", Seq: " .. tvb(4, 4):uint()
        .. ", Ack: " .. tvb(8, 4):uint() .. ", Len: " .. payload_len)
    subtree:add(f.version, tvb(0, 1))
    subtree:add(f.hdr_len, tvb(1, 1), header_len)
    local flag_tree = subtree:add(f.flags, tvb(2, 2))
    flag_tree:add(f.flag_syn, tvb(2, 2))
    flag_tree:add(f.flag_ack, tvb(2, 2))
    flag_tree:add(f.flag_fin, tvb(2, 2))
    flag_tree:add(f.flag_rst, tvb(2, 2))
    flag_tree:add(f.flag_psh, tvb(2, 2))
    flag_tree:add(f.flags_str, tvb(2, 2), flag_text(flags))
    subtree:add(f.seq, tvb(4, 4))
    subtree:add(f.ack, tvb(8, 4))
    subtree:add(f.window, tvb(12, 4))
    local check = subtree:add(f.checksum, tvb(16, 4))
    if crc32(tvb) == tvb(16, 4):uint() then
        subtree:add(f.checksum_status, tvb(16, 4), "Good")
    else
        subtree:add(f.checksum_status, tvb(16, 4), "Bad")
        check:add_proto_expert_info(ef_bad_checksum)
    end
    subtree:add(f.len, tvb(0, 0), payload_len)
    if header_len > 20 then
        dissect_options(tvb, subtree, pinfo, 20, header_len)
    end
    if payload_len > 0 then
        subtree:add(f.payload, tvb(header_len))
    end
    pinfo.cols.info = string.format("%d → %d [%s] Seq=%d Ack=%d Win=%d Len=%d", pinfo.src_port, pinfo.dst_port,
        flag_text(flags), tvb(4, 4):uint(), tvb(8, 4):uint(), tvb(12, 4):uint(), payload_len)
    return tvb:len()
end

local function heuristic(tvb, pinfo, tree)
    -- Claim a conversation only on a datagram whose CRC-32 holds: other UDP traffic whose
    -- first octet happens to be 1 is left alone. Once claimed, every datagram of the
    -- conversation comes here, a corrupted one included (shown with a bad checksum).
    if not looks_like_udptcp(tvb) or crc32(tvb) ~= tvb(16, 4):uint() then return false end
    udptcp.dissector(tvb, pinfo, tree)
    pinfo.conversation = udptcp  -- the rest of this conversation is udptcp too (flow graph)
    return true
end

udptcp:register_heuristic("udp", heuristic)
DissectorTable.get("udp.port"):add_for_decode_as(udptcp)
