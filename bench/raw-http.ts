// The cheapest HTTP/1.1 client this process can be: keep-alive sockets written with one prebuilt request each and
// read for the status and Content-Length only. bench/dns-churn.ts sends its writes with it because the driver
// shares CPU 0 with dnsperf: what the client costs there is taken from dnsperf's sending, not from the server under
// test (undici at 100 writes a second cost dnsperf several per cent). It reads only responses that carry a
// Content-Length (ours and bench/bare-writes.ts' do), one after another on a connection.
import { connect, type Socket } from "node:net";

interface Waiting {
  readonly resolve: (status: number) => void;
}

class Connection {
  private buffered = "";
  private readonly waiting: Waiting[] = [];
  readonly socket: Socket;

  constructor(port: number, host: string, onClose: (c: Connection) => void) {
    this.socket = connect(port, host);
    this.socket.setNoDelay(true);
    this.socket.setEncoding("latin1");
    this.socket.on("data", (chunk: string) => this.read(chunk));
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => {
      for (const w of this.waiting.splice(0)) w.resolve(0);
      onClose(this);
    });
  }

  get pending(): number {
    return this.waiting.length;
  }

  send(request: string): Promise<number> {
    return new Promise((resolve) => {
      this.waiting.push({ resolve });
      this.socket.write(request, "latin1");
    });
  }

  /** Responses one after another: the status line, the headers up to the blank line, Content-Length bytes. */
  private read(chunk: string): void {
    this.buffered += chunk;
    for (;;) {
      const end = this.buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.buffered.slice(0, end);
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.buffered.length < end + 4 + length) return;
      this.buffered = this.buffered.slice(end + 4 + length);
      this.waiting.shift()?.resolve(Number(head.slice(9, 12)));
    }
  }
}

/** Requests spread over up to `connections` keep-alive connections (the least busy one each time). A request on a
 * connection that closes resolves with status 0. */
export class RawHttp {
  private readonly pool: Connection[] = [];

  constructor(
    private readonly port: number,
    private readonly host = "127.0.0.1",
    private readonly connections = 8,
  ) {}

  request(method: string, path: string, body?: string): Promise<number> {
    const bytes = body === undefined ? "" : body;
    const head = `${method} ${path} HTTP/1.1\r\nhost: ${this.host}:${this.port}\r\n${body === undefined ? "" : `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(bytes)}\r\n`}\r\n`;
    return this.pick().send(head + bytes);
  }

  close(): void {
    for (const c of this.pool.splice(0)) c.socket.end();
  }

  private pick(): Connection {
    let best: Connection | undefined;
    for (const c of this.pool) if (best === undefined || c.pending < best.pending) best = c;
    if (best !== undefined && (best.pending === 0 || this.pool.length >= this.connections)) return best;
    const c = new Connection(this.port, this.host, (gone) => this.pool.splice(this.pool.indexOf(gone) >>> 0, 1));
    this.pool.push(c);
    return c;
  }
}
