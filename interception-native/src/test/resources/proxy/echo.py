# A raw TCP server for the netns tests: reads until the client ends its side, then answers the bytes upper-cased
# with "ECHO " in front and closes (so half-close must pass both ways); with "peer" as a third argument, it answers
# "ECHO <the connection's remote IP>" instead. Usage: echo.py BIND PORT [peer]
import socket, sys, threading

def serve(conn, peer):
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.sendall(b"ECHO " + (peer[0].encode() if len(sys.argv) > 3 and sys.argv[3] == "peer" else data.upper()))
    conn.close()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, a = s.accept()
    threading.Thread(target=serve, args=(c, a), daemon=True).start()
