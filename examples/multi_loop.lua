-- The seed's "multi loop" example: two light threads fetching at once.
-- usage: coevent multi_loop.lua HOST PORT
local host, port = arg[1] or '127.0.0.1', tonumber(arg[2]) or 80

local L = require('coevent')

local function test_case(test_id)
    local cok = cosocket.tcp()
    local r, err = cok:connect(host, port)
    if not r then
        print('Connect Error:', err)
        return 0
    end
    cok:send('GET / HTTP/1.0\r\n')
    cok:send({ 'Host: ', host, '\r\n', 'Connection: close\r\n\r\n' })
    local data_len = 0
    while true do
        local r, e = cok:receive('*l')
        if not r then
            if e ~= 'closed' then print('Read Error:', e) end
            break
        end
        data_len = data_len + #r
    end
    print('#' .. test_id .. ' Readed:', data_len)
    cok:close()
    return data_len
end

L(function()
    local t1 = newthread(test_case, 1)
    local t2 = newthread(test_case, 2)
    print(coroutine_wait(t1)) -- the length thread 1 read
    print(coroutine_wait(t2)) -- the length thread 2 read
end)
