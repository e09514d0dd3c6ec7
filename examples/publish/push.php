<?php
// push.php — a PHP application tells the browsers in a room, through
// mod_wsock's publish endpoint (docs/publish.md; the README's example).
//
//   php push.php [BASE_URL] [ROOM]      default http://127.0.0.1 orders
//
// Apache config: <Location /chat> WSockHandler chat room=query </Location>
// and <Location /pub> SetHandler wsock-publish </Location>; browsers connect
// to ws(s)://host/chat?room=orders.  Prints the endpoint's JSON answer.
$base = $argv[1] ?? 'http://127.0.0.1';
$room = $argv[2] ?? 'orders';
$ctx = stream_context_create(['http' => [
    'method'        => 'POST',
    'header'        => "Content-Type: application/json\r\n",
    'content'       => json_encode(['order' => 1234, 'status' => 'shipped']),
    'ignore_errors' => true,            // the answer's JSON also for 4xx/5xx
]]);
$answer = file_get_contents("$base/pub?location=/chat&room=" . urlencode($room), false, $ctx);
echo $answer;
exit(str_contains($http_response_header[0] ?? '', ' 200 ') ? 0 : 1);
