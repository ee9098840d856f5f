return {1, 2.5, 'x', true, {a = {b = {'\xff'}}}, [10] = 'ten'}
