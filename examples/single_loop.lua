-- The seed's "single loop" example: one light thread fetching a page.
-- usage: coevent single_loop.lua HOST PORT
local host, port = arg[1] or '127.0.0.1', tonumber(arg[2]) or 80

local L = require('coevent')
L(function()
    local cok, err = cosocket.tcp()
    local r, err = cok:connect(host, port)
    if not r then
        print('Connect Error:', err)
    else
        cok:send('GET / HTTP/1.0\r\n')
        cok:send({
            'Host: ', host, '\r\n',
            'User-Agent: coevent-demo\r\n',
            'Connection: close\r\n\r\n',
        })
        local datas, datas_c, data_len = {}, 1, 0
        while true do
            local r, e = cok:receive('*l')
            if r then
                datas[datas_c] = r
                data_len = data_len + #r
                datas_c = datas_c + 1
            else
                if e ~= 'closed' then
                    print('Read Error:', e)
                end
                break
            end
        end
        print('Status:', datas[1])
        print('Readed:', data_len, 'bytes in', datas_c - 1, 'lines')
        cok:close()
    end
end)
