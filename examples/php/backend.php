<?php
// A WebSocket application in PHP behind mod_wsock's backend handler
// (protocol=plain; docs/backend.md), served by PHP's built-in server:
//
//     WSockHandler backend http://127.0.0.1:8082/ protocol=plain
//
//     php -S 127.0.0.1:8082 examples/php/backend.php
//
// Every client event is one POST: Wsock-Event says which (open, message,
// close), Connection-Id which client; a message is the raw body.  A 2xx
// answer's body goes back to that client as one message (204: nothing);
// a refusal of "open" refuses the upgrade with its status.
//   open:    clients need ?user=NAME; "mallory" is turned away with 403.
//   message: "whoami" answers with what mod_wsock says about the client;
//            binary is echoed as it is; text comes back in capitals (ASCII letters).
//   close:   noted in PHP's log (stderr), with the close code.

$event = $_SERVER['HTTP_WSOCK_EVENT'] ?? '';
$id = $_SERVER['HTTP_CONNECTION_ID'] ?? '';
$uri = $_SERVER['HTTP_WSOCK_URI'] ?? '';
parse_str(parse_url($uri, PHP_URL_QUERY) ?? '', $query);
$user = $query['user'] ?? '';

switch ($event) {
case 'open':
    if ($user === '') {
        http_response_code(401);
        echo "who are you? (?user=NAME)\n";
    } elseif ($user === 'mallory') {
        http_response_code(403);
        echo "not you, mallory\n";
    } else {
        header('Content-Type: text/plain; charset=utf-8');
        echo "hello $user";
    }
    break;
case 'message':
    $body = file_get_contents('php://input');
    if (($_SERVER['CONTENT_TYPE'] ?? '') === 'application/octet-stream') {
        header('Content-Type: application/octet-stream');
        echo $body;
    } elseif ($body === 'whoami') {
        header('Content-Type: application/json');
        echo json_encode([
            'user' => $user,
            'connection' => $id,
            'address' => $_SERVER['HTTP_WSOCK_REMOTE_ADDR'] ?? null,
            'protocol' => $_SERVER['HTTP_WSOCK_PROTOCOL'] ?? null,
        ]);
    } else {
        header('Content-Type: text/plain; charset=utf-8');
        echo strtoupper($body);
    }
    break;
case 'close':
    error_log("CLOSE $id " . ($_SERVER['HTTP_WSOCK_CLOSE_CODE'] ?? ''));
    http_response_code(204);
    break;
default:
    http_response_code(400);
    echo "not a mod_wsock event\n";
}
