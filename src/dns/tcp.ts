// DNS over TCP (RFC 7766): two-byte length prefixes, several queries per connection, answers possibly out of
// order (forwarded ones), and bounds so that one client cannot hold memory or a connection for long:
// - reading pauses while the socket's write buffer is over WRITE_SOFT (a client that does not read its answers
//   stops being read), and a connection whose buffer still grows past WRITE_HARD is closed;
// - at most MAX_IN_FLIGHT forwarded queries wait per connection; reading pauses at the cap;
// - a connection must complete a query every idle period: the timer restarts on each whole query, not on each
//   byte, so a client sending one byte a second is closed like an idle one;
// - the server takes --dns-tcp-max-connections connections at once (see DnsServer.listenTcp).
import type { Socket } from "node:net";
import { tcpLength } from "./wire.js";

export const WRITE_SOFT = 64 * 1024;
export const WRITE_HARD = 1024 * 1024;
export const MAX_IN_FLIGHT = 32;

export type TcpAnswer = (message: Buffer) => Buffer | undefined | Promise<Buffer | undefined>;

export function serveTcpConnection(socket: Socket, answer: TcpAnswer, idleMs: number): void {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  const idle = setTimeout(() => socket.destroy(), idleMs);
  socket.on("close", () => clearTimeout(idle));
  let pending: Buffer = Buffer.alloc(0);
  let inFlight = 0;

  const write = (message: Buffer | undefined) => {
    if (message === undefined || socket.destroyed) return;
    // The length and the message in one writev, without copying the message into a frame (answers run to 64 KB).
    socket.cork();
    socket.write(tcpLength(message));
    socket.write(message);
    socket.uncork();
    if (socket.writableLength > WRITE_HARD) socket.destroy();
  };
  const blocked = () => socket.writableLength > WRITE_SOFT || inFlight >= MAX_IN_FLIGHT;
  const pump = () => {
    while (pending.length >= 2 && !blocked() && !socket.destroyed) {
      const length = pending.readUInt16BE(0);
      if (pending.length < 2 + length) break;
      const message = pending.subarray(2, 2 + length);
      pending = pending.subarray(2 + length);
      idle.refresh();
      const response = answer(message);
      if (response instanceof Promise) {
        inFlight += 1;
        void response.then((r) => {
          inFlight -= 1;
          write(r);
          pump();
        });
      } else {
        write(response);
      }
    }
    // Whatever is left is at most one chunk and one partial message: data stops while paused.
    if (blocked()) socket.pause();
    else if (socket.isPaused()) socket.resume();
  };
  socket.on("drain", pump);
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    pump();
  });
}
