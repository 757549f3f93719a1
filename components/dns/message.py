"""DNS messages in and out: a request's reply (pure), and what UDP's size limit makes of it."""

from __future__ import annotations

from dnslib import EDNS0, OPCODE, QTYPE, RCODE, DNSError, DNSHeader, DNSRecord
from dnslib.buffer import Buffer, BufferError

from components.dns.records import Records, lookup

UDP_DEFAULT_SIZE = 512


def edns(request: DNSRecord) -> EDNS0 | None:
    return next((rr for rr in request.ar if rr.rtype == QTYPE.OPT), None)


def udp_limit(request: DNSRecord) -> int:
    """The largest UDP reply the client accepts: 512, or its EDNS0 buffer size."""
    opt = edns(request)
    return max(UDP_DEFAULT_SIZE, opt.rclass) if opt is not None else UDP_DEFAULT_SIZE


def respond(records: Records | None, request: DNSRecord) -> DNSRecord:
    """The reply to a request. `records` is None until the API is synced (the reply is SERVFAIL, so
    clients retry rather than cache a negative answer)."""
    header = DNSHeader(id=request.header.id, qr=1, opcode=request.header.opcode, rd=request.header.rd)
    reply = DNSRecord(header, questions=list(request.questions))
    if request.header.opcode != OPCODE.QUERY:
        reply.header.rcode = RCODE.NOTIMP
    elif len(request.questions) != 1:
        reply.header.rcode = RCODE.FORMERR
    elif records is None:
        reply.header.rcode = RCODE.SERVFAIL
    else:
        answer = lookup(records, str(request.q.qname), request.q.qtype)
        reply.header.rcode = answer.rcode
        reply.header.aa = int(answer.authoritative)
        for rr in answer.answers:
            reply.add_answer(rr)
        for rr in answer.authority:
            reply.add_auth(rr)
        for rr in answer.additional:
            reply.add_ar(rr)
    if edns(request) is not None:
        reply.add_ar(EDNS0(udp_len=udp_limit(request)))
    return reply


def truncate(reply: DNSRecord) -> DNSRecord:
    """The reply cut down to its header and question with TC set, telling the client to retry over TCP."""
    header = DNSHeader(id=reply.header.id, qr=1, opcode=reply.header.opcode, rd=reply.header.rd,
                       aa=reply.header.aa, rcode=reply.header.rcode, tc=1)
    short = DNSRecord(header, questions=list(reply.questions))
    for rr in reply.ar:
        if rr.rtype == QTYPE.OPT:
            short.add_ar(rr)
    return short


def pack_for(reply: DNSRecord, request: DNSRecord, proto: str) -> bytes:
    data = reply.pack()
    if proto == "udp" and len(data) > udp_limit(request):
        data = truncate(reply).pack()
    return data


def format_error(data: bytes) -> bytes | None:
    """FORMERR for a message that does not parse, if at least its header does."""
    try:
        header = DNSHeader.parse(Buffer(data))
    except (DNSError, BufferError):
        return None
    if header.qr:
        return None
    return DNSRecord(DNSHeader(id=header.id, qr=1, opcode=header.opcode, rd=header.rd,
                               rcode=RCODE.FORMERR)).pack()

