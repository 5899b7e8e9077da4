# A raw TCP server for the netns tests: reads until the client ends its side, then answers the bytes upper-cased
# with "ECHO " in front and closes (so half-close must pass both ways). Usage: echo.py BIND PORT
import socket, sys, threading

def serve(conn):
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.sendall(b"ECHO " + data.upper())
    conn.close()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
